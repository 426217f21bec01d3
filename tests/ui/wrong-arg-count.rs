bp::network! {
    struct Net {
        input x: [4];
        let h = linear(x);
        output h;
    }
}

fn main() {}
