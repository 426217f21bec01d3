bp::network! {
    struct Net {
        input x: [4];
        let h = linear(relu(linear(x, 8)), 3);
        output h;
    }
}

fn main() {}
