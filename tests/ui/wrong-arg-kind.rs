bp::network! {
    struct Net {
        input x: [4];
        let h = linear(x, 2.5);
        output h;
    }
}

fn main() {}
