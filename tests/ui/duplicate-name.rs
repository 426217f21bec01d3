bp::network! {
    struct Net {
        input x: [4];
        let h = linear(x, 3);
        let h = relu(h);
        output h;
    }
}

fn main() {}
